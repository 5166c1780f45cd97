"""Helpers the base flow's steps use, imported relatively."""

DEFAULT_REGION = "eu"


def region_label(region):
    return f"region-{region or DEFAULT_REGION}"
