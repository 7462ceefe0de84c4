x/src/core/rng.o: src/core/rng.c src/core/core.h include/crossrec.h

src/core/core.h:

include/crossrec.h:
