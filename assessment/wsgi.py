"""The WSGI entry point gunicorn serves (``microcred serve``)."""
from assessment.app import create_app

app = create_app()
