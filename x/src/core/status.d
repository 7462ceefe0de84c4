x/src/core/status.o: src/core/status.c src/core/core.h include/crossrec.h

src/core/core.h:

include/crossrec.h:
