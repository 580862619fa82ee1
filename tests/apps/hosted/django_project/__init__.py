"""A minimal Django project (settings, URLs, views in one module), served through ASGI and WSGI."""
