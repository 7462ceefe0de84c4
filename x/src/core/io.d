x/src/core/io.o: src/core/io.c src/core/core.h include/crossrec.h

src/core/core.h:

include/crossrec.h:
