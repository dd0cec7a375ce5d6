"""Charge-point operators: the CarbuRe registry, quarterly index readings, evidence for auditors."""
