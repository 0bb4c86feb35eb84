"""Use-cases between the routes and the database (one service per resource)."""
