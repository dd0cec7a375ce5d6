"""The gateway: read meters, build 15-minute intervals, seal and publish them."""
