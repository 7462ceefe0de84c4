x/src/core/mem.o: src/core/mem.c src/core/core.h include/crossrec.h

src/core/core.h:

include/crossrec.h:
