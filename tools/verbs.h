/* One function per verb of the command line (tools/cmd_*.c). Each takes
 * argv with argv[0] = the verb, prints, and returns the process exit code. */
#ifndef BG_VERBS_H
#define BG_VERBS_H

int bg_cmd_ops(int argc, char **argv);
int bg_cmd_validate(int argc, char **argv);
int bg_cmd_train(int argc, char **argv);
int bg_cmd_eval(int argc, char **argv);
int bg_cmd_plot(int argc, char **argv);
int bg_cmd_profile(int argc, char **argv);
int bg_cmd_search(int argc, char **argv);
int bg_cmd_bench(int argc, char **argv);
int bg_cmd_model(int argc, char **argv);
int bg_cmd_augment(int argc, char **argv);
int bg_cmd_data(int argc, char **argv);

#endif
