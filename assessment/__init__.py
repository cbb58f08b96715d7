"""The Flask application: users, the exam runner, administration, and the wiring of every package."""
