"""Keep the ML libraries' advice to their own developers out of aeth's output.

Two messages reach users of ordinary commands and mislead them: bitsandbytes, on CPUs with
AVX512-BF16, advises ``pip install kernels`` (a package that downloads kernels from a hub at run
time, which aeth's users must not add), and DeepSpeed, imported by transformers whenever it is
installed, warns that it found no accelerator on a machine that has none. Each is dropped by a
logging filter on its own logger, matched by its text; nothing else those loggers say is touched.
"""

from __future__ import annotations

import logging
import warnings

#: logger name -> a piece of the one message dropped from it
NOISE = {
    "bitsandbytes.backends.cpu.ops": "pip install kernels",
    "DeepSpeed": "Setting accelerator to CPU",
}


class _Drop(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def quiet_libraries() -> None:
    """Install the filters (once; calling again adds nothing)."""
    for name, text in NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) and f.text == text for f in logger.filters):
            logger.addFilter(_Drop(text))
    # deprecation notices between the libraries are for their developers
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft|torch)\.")
