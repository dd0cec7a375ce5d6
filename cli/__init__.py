"""The top floor: the ``quartier`` command, the demo, site provisioning and the throw-away dev servers.

It may import every part, and loads each one only when its subcommand runs (:mod:`cli.main`), so a machine
with only the gateway's packages, or only the cloud's, runs its own commands. Nothing below imports it.
"""
