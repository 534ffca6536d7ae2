"""Pure rules and whole-transaction functions over the store: what the desk does, without HTTP."""
