import type { Command, Option } from "commander";

// Shell completion generated from the CLI's own command tree, so it never drifts from the verbs and
// flags that exist. commander has no completion support of its own.

/** Flags whose value is a path: the shell completes file names there. */
const PATH_FLAGS = new Set(["--dir", "--to", "--config", "--datastore", "--report", "--compare", "--fio", "-f", "--file", "--identity", "--password-file"]);

interface CommandSpec {
  /** Words from the program's name to this command, space-separated (never empty: bash has no empty keys). */
  path: string;
  subcommands: string[];
  flags: string[];
  /** Flags that take a value. */
  valued: string[];
  choices: Map<string, readonly string[]>;
}

function optionFlags(o: Option): string[] {
  return [o.short, o.long].filter((f): f is string => Boolean(f));
}

function collect(command: Command, path: string, out: CommandSpec[]): void {
  const options = command.options as readonly Option[];
  const spec: CommandSpec = {
    path,
    subcommands: command.commands.map((c) => c.name()),
    flags: [...options.flatMap(optionFlags), "--help"],
    valued: options.filter((o) => o.required || o.optional).flatMap(optionFlags),
    choices: new Map(options.filter((o) => o.argChoices?.length).flatMap((o) => optionFlags(o).map((f) => [f, o.argChoices!] as const))),
  };
  out.push(spec);
  for (const c of command.commands) collect(c, `${path} ${c.name()}`, out);
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The tables both shells use: keyed by command path (and "path flag" for choices). bash assigns
 * `t['key']=value`; zsh would keep those quotes in the key, so it appends `(key value)` pairs.
 */
function tables(program: Command, prefix: string, shell: "bash" | "zsh"): string[] {
  const specs: CommandSpec[] = [];
  collect(program, program.name(), specs);
  const set = (table: string, key: string, value: string) =>
    shell === "bash" ? `${prefix}_${table}[${quote(key)}]=${quote(value)}` : `${prefix}_${table}+=(${quote(key)} ${quote(value)})`;
  const lines = [`${shell === "bash" ? "declare -gA" : "typeset -gA"} ${prefix}_subs ${prefix}_flags ${prefix}_valued ${prefix}_files ${prefix}_choices`];
  for (const s of specs) {
    lines.push(set("subs", s.path, s.subcommands.join(" ")));
    lines.push(set("flags", s.path, s.flags.join(" ")));
    lines.push(set("valued", s.path, s.valued.join(" ")));
    lines.push(set("files", s.path, s.valued.filter((f) => PATH_FLAGS.has(f)).join(" ")));
    for (const [flag, values] of s.choices) lines.push(set("choices", `${s.path} ${flag}`, values.join(" ")));
  }
  return lines;
}

function bash(program: Command): string {
  const name = program.name();
  const f = `_${name.replace(/\W/g, "_")}`;
  return `# bash completion for ${name}; load with: source <(${name} completion bash)
${tables(program, f, "bash").join("\n")}

${f}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmd=${name} w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    if [[ " \${${f}_subs[$cmd]} " == *" $w "* ]]; then cmd="$cmd $w"; fi
  done
  if [[ -n "\${${f}_choices["$cmd $prev"]}" ]]; then
    COMPREPLY=($(compgen -W "\${${f}_choices["$cmd $prev"]}" -- "$cur")); return
  fi
  if [[ " \${${f}_files[$cmd]} " == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur")); return
  fi
  if [[ " \${${f}_valued[$cmd]} " == *" $prev "* ]]; then COMPREPLY=(); return; fi
  if [[ "$cur" == -* || -z "\${${f}_subs[$cmd]}" ]]; then
    COMPREPLY=($(compgen -W "\${${f}_flags[$cmd]}" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "\${${f}_subs[$cmd]}" -- "$cur"))
  fi
}
complete -o default -F ${f} ${name}
`;
}

function zsh(program: Command): string {
  const name = program.name();
  const f = `_${name.replace(/\W/g, "_")}`;
  return `#compdef ${name}
# zsh completion for ${name}; load with: source <(${name} completion zsh)
${tables(program, f, "zsh").join("\n")}

${f}() {
  local cmd=${name} w i prev="\${words[CURRENT-1]}" cur="\${words[CURRENT]}"
  for ((i = 2; i < CURRENT; i++)); do
    w="\${words[i]}"
    [[ "$w" == -* ]] && continue
    if [[ " \${${f}_subs[$cmd]} " == *" $w "* ]]; then cmd="$cmd $w"; fi
  done
  if [[ -n "\${${f}_choices[$cmd $prev]}" ]]; then compadd -- \${=${f}_choices[$cmd $prev]}; return; fi
  if [[ " \${${f}_files[$cmd]} " == *" $prev "* ]]; then _files; return; fi
  if [[ " \${${f}_valued[$cmd]} " == *" $prev "* ]]; then return; fi
  if [[ "$cur" == -* || -z "\${${f}_subs[$cmd]}" ]]; then
    compadd -- \${=${f}_flags[$cmd]}
  else
    compadd -- \${=${f}_subs[$cmd]}
  fi
}
if (( $+functions[compdef] )); then compdef ${f} ${name}; fi
`;
}

/** The completion script for a shell, generated from the program's commands and options. */
export function completionScript(program: Command, shell: string): string {
  if (shell === "bash") return bash(program);
  if (shell === "zsh") return zsh(program);
  throw new Error(`completion for "${shell}" is not available (bash or zsh)`);
}
