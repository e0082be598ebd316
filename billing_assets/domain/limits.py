"""Default limits on landing files and readings (domain rules; the settings may override them)."""

#: Default ceiling of one reading, kWh. A half hour at 100 MW is 50,000 kWh: more than a large
#: industrial site draws, so only a broken meter or a bad export reaches it, and sums of
#: accepted readings stay far inside ``decimal(38, 9)``.
DEFAULT_MAX_READING_KWH = 50_000.0
#: Default size of a piece: one Spark task reads at most this much of a landing file.
DEFAULT_PIECE_MIB = 64
DEFAULT_PIECE_BYTES = DEFAULT_PIECE_MIB << 20
