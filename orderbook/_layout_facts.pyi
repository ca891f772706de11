__all__ = ["c_layout"]

# (values, layouts, predicates), as orderbook._layout.check takes them: "Enum.MEMBER" and
# constant names -> C value; dtype name -> (itemsize, {field: offset}) of its C struct; kind set
# name -> the C predicate's answer for each value 0..255.
def c_layout() -> tuple[
    dict[str, int], dict[str, tuple[int, dict[str, int]]], dict[str, list[bool]]
]: ...
