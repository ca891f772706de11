# _depth.pyx has a C-level API only (_depth.pxd), for book.pyx; nothing for Python.
__all__: list[str] = []
