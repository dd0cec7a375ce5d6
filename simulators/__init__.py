"""Simulated meters that speak the real protocols."""
