"""Thin stacks: they wire the constructs of `infrastructure.mm_constructs` together."""
