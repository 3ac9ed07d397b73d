"""The integration suite: the real haloyd and haloyd-ctl, real backends, real clients."""
