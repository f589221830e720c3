"""SQLModel tables, the engine and the queries the activities and the API share."""
