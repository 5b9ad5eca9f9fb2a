"""Text generation: sampling, the streaming decode loop, and the prompt format.

Nothing here imports torch at module level; the functions do, when they run.
"""

from aeth.generation.decode import answerer, stream_text
from aeth.generation.prompt import build_messages

__all__ = ["answerer", "build_messages", "stream_text"]
