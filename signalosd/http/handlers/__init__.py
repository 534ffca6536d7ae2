"""REST handlers: thin (parse → service → reply). The route table is in `routes.py`."""
