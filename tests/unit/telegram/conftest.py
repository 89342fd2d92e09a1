from tg_fake_api import closed_port, fake_api

__all__ = ["closed_port", "fake_api"]
