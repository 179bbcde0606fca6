"""The console's panels: header, XQueue table, latency, KV-cache and device panels."""
