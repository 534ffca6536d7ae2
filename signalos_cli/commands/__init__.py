"""The CLI's commands, one module per family; each is imported only when it runs."""
