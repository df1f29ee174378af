"""Sensor sources: everything between the sensor and the ring buffer.

A source kind is chosen by name in the config file (``kind = "udp"``) and
built by :func:`make_source`. Each kind lives in its own module, imported only
when that kind is used, so the daemon never loads ``spidev`` for a file
replay or SciPy for a UDP sensor.

========  ==============================================  ====================
kind      reads                                           module
========  ==============================================  ====================
file      a recording, paced or as fast as possible       ``sources.file``
udp       packets in the ``sources.wire`` framing         ``sources.udp``
pipe      raw interleaved samples on stdin or a FIFO      ``sources.pipe``
adxl345   an ADXL345 accelerometer on SPI or I2C          ``sources.adxl345``
iis3dwb   an IIS3DWB vibration sensor on SPI              ``sources.iis3dwb``
========  ==============================================  ====================
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from edgemon.errors import ConfigError
from edgemon.sources.base import Block, Source
from edgemon.sources.options import raise_problems

__all__ = ["SOURCE_KINDS", "Block", "Source", "check_source_options", "make_source", "source_class"]

#: Source kind -> "module:class" of its implementation.
SOURCE_KINDS: dict[str, str] = {
    "file": "edgemon.sources.file:FileSource",
    "udp": "edgemon.sources.udp:UdpSource",
    "pipe": "edgemon.sources.pipe:PipeSource",
    "adxl345": "edgemon.sources.adxl345:Adxl345Source",
    "iis3dwb": "edgemon.sources.iis3dwb:Iis3dwbSource",
}


def source_class(kind: str) -> type[Source]:
    """Import and return the class that implements source ``kind``.

    Raises
    ------
    ConfigError
        If ``kind`` is not a known source kind.
    """
    if kind not in SOURCE_KINDS:
        known = ", ".join(SOURCE_KINDS)
        raise ConfigError(f"unknown source kind {kind!r}; known kinds: {known}")
    module_name, class_name = SOURCE_KINDS[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def check_source_options(kind: str, options: Mapping[str, Any]) -> list[str]:
    """Return every problem with the options of a source, without opening anything.

    Parameters
    ----------
    kind : str
        One of :data:`SOURCE_KINDS`.
    options : mapping
        The source's table from the config file, without ``kind``.

    Returns
    -------
    list of str
        One message per problem, each naming the option and what it must
        be; empty when the options are valid.
    """
    try:
        cls = source_class(kind)
    except ConfigError as exc:
        return [str(exc)]
    return cls.validate(options)[1]


def make_source(kind: str, options: Mapping[str, Any], *, name: str | None = None) -> Source:
    """Build a source from its config table.

    Parameters
    ----------
    kind : str
        One of :data:`SOURCE_KINDS`.
    options : mapping
        The options of that kind (see ``docs/sources.md``).
    name : str, optional
        Label for logs, e.g. the sensor's name in the config file.

    Returns
    -------
    Source
        Not yet opened.

    Raises
    ------
    ConfigError
        Listing every invalid, missing or unknown option.
    """
    cls = source_class(kind)
    raise_problems(kind, cls.validate(options)[1])
    return cls(**options, name=name)
