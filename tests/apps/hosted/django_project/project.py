"""Settings, URLs and views of the minimal Django project; ``asgi``/``wsgi`` are its apps."""

from __future__ import annotations

import os

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="corkweb-tests-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Hello from Django", content_type="text/plain")


async def info(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"path": request.path, "script_name": request.META.get("SCRIPT_NAME"),
                         "method": request.method, "query": request.GET.get("q"),
                         "remote": request.META.get("REMOTE_ADDR"), "pid": os.getpid()})


@csrf_exempt
def upload(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"size": len(request.body), "type": request.content_type})


urlpatterns = [path("hello", hello), path("info", info), path("upload", upload)]

asgi = get_asgi_application()
wsgi = get_wsgi_application()
