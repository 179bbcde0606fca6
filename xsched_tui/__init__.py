"""xsched_tui: the Textual operator console (arrives with the console issue); it reads only the control API."""
