"""The spatial core of the Shenzhen North Station (深圳北站) digital twin."""
