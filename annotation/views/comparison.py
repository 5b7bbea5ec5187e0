"""Screens for this feature; their URLs join annotation/urls.py through `urlpatterns`."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
