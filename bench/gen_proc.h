/* gen_proc.h — what the load generator reads about the server process from /proc (proc(5)):
 * CPU time of all its threads, resident memory, thread count; the generator's own CPU time; and
 * the whole machine's, to tell when other processes shared the cores during a measurement.
 * A pid of 0, or a process that is gone, reads as 0. */
#ifndef TERN_BENCH_GEN_PROC_H
#define TERN_BENCH_GEN_PROC_H

#include <stdint.h>
#include <sys/types.h>

uint64_t proc_cpu_ticks(pid_t pid);  /* utime + stime from /proc/PID/stat, in clock ticks */
double proc_ticks_per_second(void);  /* sysconf(_SC_CLK_TCK) */
long proc_rss_kib(pid_t pid);        /* VmRSS from /proc/PID/status */
long proc_threads(pid_t pid);        /* Threads from /proc/PID/status */
double proc_self_cpu_seconds(void);  /* user + system time of this process */
uint64_t proc_machine_busy_ticks(void); /* all cores' non-idle time from /proc/stat, in ticks */

#endif
