/* rss: run a command and write its peak resident set (KiB, the largest of
 * the command and the children it waited for) to OUTFILE.
 *
 * The benchmark's driver cannot read this itself: Go starts processes with
 * vfork, so the kernel charges the driver's own peak RSS to every child it
 * execs. A small C process that fork()s does not inflate it (by ~1 MiB at
 * most). Usage: rss OUTFILE COMMAND [ARG]...  Exit status: the command's. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
	if (argc < 3) { fprintf(stderr, "usage: rss OUTFILE COMMAND [ARG]...\n"); return 2; }
	pid_t pid = fork();
	if (pid < 0) { perror("fork"); return 2; }
	if (pid == 0) { execvp(argv[2], argv + 2); perror(argv[2]); _exit(127); }
	int st; struct rusage ru;
	if (wait4(pid, &st, 0, &ru) < 0) { perror("wait4"); return 2; }
	FILE *f = fopen(argv[1], "w");
	if (!f) { perror(argv[1]); return 2; }
	fprintf(f, "%ld\n", ru.ru_maxrss);
	fclose(f);
	if (WIFEXITED(st)) return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}
