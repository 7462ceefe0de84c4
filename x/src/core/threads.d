x/src/core/threads.o: src/core/threads.c src/core/core.h \
  include/crossrec.h

src/core/core.h:

include/crossrec.h:
