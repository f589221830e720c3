"""Pure domain models and policies shared by the workflow, the activities and the API.

Nothing here does I/O or reads the clock, so the workflow sandbox can import it as is.
"""
