/**
 * `ppn completion bash|zsh`: a completion script made from the command tree itself, so it never
 * falls behind: subcommands, each command's options, and the values of enumerated options.
 * zsh loads the bash script through bashcompinit.
 */
import type { Command } from 'commander';
import { SCOPES } from '../tokens/scopes.js';

/** Values an option's argument completes to, by option name. */
const OPTION_VALUES: Record<string, readonly string[]> = { '--scope': SCOPES };

function words(command: Command): string[] {
  const subcommands = command.commands.map((c) => c.name());
  const options = command.options.flatMap((o) => [o.short, o.long].filter((flag): flag is string => flag !== undefined));
  return [...subcommands, ...options, '--help'];
}

/** Every command path (`""`, `"vm"`, `"vm create"`…) with the words that may follow it. */
function paths(command: Command, prefix = ''): [string, string[]][] {
  return [[prefix, words(command)], ...command.commands.flatMap((sub) => paths(sub, prefix === '' ? sub.name() : `${prefix} ${sub.name()}`))];
}

export function bashCompletion(program: Command): string {
  const table = paths(program);
  const name = program.name();
  const cases = table.map(([path, list]) => `    "${path}") opts="${list.join(' ')}" ;;`).join('\n');
  const values = Object.entries(OPTION_VALUES)
    .map(([option, list]) => `    ${option}) COMPREPLY=( $(compgen -W "${list.join(' ')}" -- "$cur") ); return ;;`)
    .join('\n');
  return `# ${name} completion for bash; load it with: source <(${name} completion bash)
_${name}() {
  local cur prev path next word opts i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
${values}
  esac
  path=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    next="\${path:+$path }$word"
    case "|${table.map(([path]) => path).join('|')}|" in *"|$next|"*) path="$next" ;; esac
  done
  case "$path" in
${cases}
    *) opts="" ;;
  esac
  if [ "$path" = "completion" ]; then opts="bash zsh"; fi
  COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
}
complete -o default -F _${name} ${name}
`;
}

export function zshCompletion(program: Command): string {
  return `# ${program.name()} completion for zsh; load it with: source <(${program.name()} completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program)}`;
}
