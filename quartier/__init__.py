"""Quartier: open-source metering for small energy actors.

The ``quartier`` package holds what every part shares (time, the interval
model, the wire protocol, meter register maps, configuration, the command
line). The parts themselves live in the ``gateway``, ``cloud`` and
``simulators`` packages.
"""

__version__ = "0.1.0"
