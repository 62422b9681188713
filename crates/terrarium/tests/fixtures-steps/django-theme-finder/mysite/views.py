from django.http import JsonResponse


def health(request):
    return JsonResponse({"status": "ok"})


def index(request):
    return JsonResponse({"message": "hello from the themed site"})
