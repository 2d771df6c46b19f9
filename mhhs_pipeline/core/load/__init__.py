"""The load model: archetype shapes, calendars and the consumption generator."""

from mhhs_pipeline.core.load.generator import GeneratedConsumption, generate_consumption

__all__ = ["GeneratedConsumption", "generate_consumption"]
