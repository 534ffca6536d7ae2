"""The dashboard's side of the daemon: its static files (serve.py), the headers every response
carries (headers.py) and the browser Origin rules (origin.py, cors.py)."""
