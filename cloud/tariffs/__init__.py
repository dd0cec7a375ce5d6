"""Retail tariffs: the tariff model as data, compensation mechanisms, bills from 15-minute series."""
