"""xsched_tui: the Textual operator console for xschedd; it knows only the control API.

Layers (nvitop's split): `records` (immutable view records), `store` (WatchStatus
snapshots and deltas -> records), `connection` + `client` (gRPC, reconnect), `devices`
(NVML, optional) and `forms` (dialog input -> validated requests) have no UI; `widgets`,
`screens` and `app` render them.
"""
