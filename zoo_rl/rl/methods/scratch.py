"""Scratch: SB3's NatureCNN with its default random initialisation; no transfer."""

from .base import Method


class Scratch(Method):
    name = "scratch"
    exportable = True
