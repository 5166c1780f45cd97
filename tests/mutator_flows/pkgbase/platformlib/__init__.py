"""A project package whose base flow uses a mutator and configs."""

from .flows import PlatformBase

__all__ = ["PlatformBase"]
