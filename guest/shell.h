/* Running commands: from argon.cmd, or typed at the argon> prompt. */
#ifndef GUEST_SHELL_H
#define GUEST_SHELL_H

/* Runs the ';'-separated commands of script, then exits the VM with the
 * highest status any returned (an `exit N` ends at once with N). */
void __attribute__((noreturn)) shell_run_script(char *script);

/* The interactive prompt; never returns (exit / poweroff / reboot end it, and Ctrl-D,
 * which powers off with the worst status of the commands typed). */
void __attribute__((noreturn)) shell_interactive(void);

#endif
