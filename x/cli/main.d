x/cli/main.o: cli/main.c include/crossrec.h

include/crossrec.h:
