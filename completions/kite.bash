# bash completion for kite. Subcommands come from `kite --help` and each
# subcommand's options from `kite CMD --help`, read on first use and cached
# for the shell's life: a new subcommand or option needs no edit here.

_kite_commands() {
	# The lines of the "Commands:" block: "  name   description".
	"$1" --help 2>/dev/null | awk '/^Commands:/ { in_list = 1; next }
		in_list && /^  [a-z]/ { print $1; next }
		in_list && !/^  / { in_list = 0 }'
}

_kite_options() {
	# Every long option the usage text names ("--kill[=SIG]" -> "--kill").
	"$1" "$2" --help 2>/dev/null | grep -oE -- '(^|[ ,[|])--[a-z][a-z0-9-]*' |
		sed 's/^[ ,[|]*//' | sort -u
}

_kite() {
	local cur=${COMP_WORDS[COMP_CWORD]} kite=${COMP_WORDS[0]} cmd="" i
	declare -gA _kite_opts_cache
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	# After "--" (kite lock NAME -- COMMAND): complete commands and files.
	for ((i = 1; i < COMP_CWORD; i++)); do
		if [ "${COMP_WORDS[i]}" = "--" ]; then
			COMPREPLY=($(compgen -c -- "$cur"))
			return
		fi
	done
	if [ -z "$cmd" ]; then
		[ -n "${_kite_cmds_cache-}" ] || _kite_cmds_cache=$(_kite_commands "$kite")
		COMPREPLY=($(compgen -W "$_kite_cmds_cache --help --version" -- "$cur"))
		return
	fi
	if [[ $cur == -* ]]; then
		[ -n "${_kite_opts_cache[$cmd]-}" ] ||
			_kite_opts_cache[$cmd]=$(_kite_options "$kite" "$cmd")
		COMPREPLY=($(compgen -W "${_kite_opts_cache[$cmd]}" -- "$cur"))
		return
	fi
	# Operands: socket paths for who, files otherwise.
	COMPREPLY=($(compgen -f -- "$cur"))
}
complete -F _kite kite
