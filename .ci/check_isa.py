#!/usr/bin/env python3
"""Check that the baseline code of the compiled extensions has no AVX instructions.

Usage: check_isa.py PATH...   (an extension .so, or a directory holding _native*.so and
_pool*.so, e.g. the installed aekernels package).  Exit 0: clean; 1: violations;
2: cannot check (objdump missing, stripped library, no extension found).

Why: only the ISA units may use AVX/AVX2/AVX-512/FMA, and they are called only after a
CPUID check (csrc/dispatch.cpp; GCC ifunc resolvers for the _pool clones).  Any other
function runs on every x86-64 CPU, so one VEX/EVEX instruction in it is a SIGILL on a
CPU without AVX.  The subtle way to get one: an inline function or template from a
shared header instantiated both in an ISA unit and in a generic unit is a COMDAT (weak)
symbol, and the linker keeps just one copy -- possibly the AVX one -- for both callers.

What counts as ISA code (everything else must be baseline):
  * _native: functions whose name, parameter list aside, mentions the namespaces
    aek::avx2 / aek::avx512.  csrc/*_avx2.cpp and csrc/*_avx512.cpp put all their code
    there (their traits types in an anonymous namespace inside it), so a shared template
    instantiated over those types is theirs alone; a shared template instantiated over
    anything else (float, std:: types, generic traits) can be merged and must be baseline.
  * _pool: GCC target_clones clones ("fn.avx2", "fn.avx2.0", "fn [clone .avx2]", also
    any further .part/.constprop/_omp_fn clone of them).
What counts as AVX: ymm/zmm/k-mask registers, any VEX/EVEX mnemonic (v* except the
VMX/SVM instructions, so AVX forms on xmm and FMA count), AVX-512 mask instructions
(k*), and the VEX-encoded BMI1/BMI2 integer instructions.

Only functions defined in the library are scanned (PLT stubs are skipped); the
instructions of each function are attributed through the library's symbol table, so a
stripped library cannot be checked.
"""
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from glob import glob

ISA_NAMESPACE = re.compile(r"\baek::avx(?:2|512)::")
ISA_CLONE = re.compile(r"\.(?:avx2|avx512\w*|fma|arch_\w+)(?=[.\]]|$)")
HEADER = re.compile(r"^([0-9a-f]+) <(.*)>:$")
INSN = re.compile(r"^\s*[0-9a-f]+:\t(.*)$")
SECTION = re.compile(r"^Disassembly of section (\S+):$")
AVX_REGISTER = re.compile(r"%(?:[yz]mm\d+|k[0-7]\b)")
# Mnemonics starting with 'v' that are not VEX/EVEX: virtualisation and verr/verw.
NOT_VEX = {"verr", "verw", "vmcall", "vmclear", "vmfunc", "vmgexit", "vmlaunch", "vmload",
           "vmmcall", "vmptrld", "vmptrst", "vmread", "vmresume", "vmrun", "vmsave",
           "vmwrite", "vmxoff", "vmxon"}
# VEX-encoded general-purpose instructions (BMI1/BMI2): not baseline x86-64 either.
BMI = {"andn", "bextr", "blsi", "blsmsk", "blsr", "bzhi", "mulx", "pdep", "pext", "rorx",
       "sarx", "shlx", "shrx"}
AVX512_MASK = re.compile(r"^k(?:add|and|andn|mov|not|or|ortest|shiftl|shiftr|test|unpck|xnor|xor)"
                         r"[bwdq]{1,2}$")
PREFIXES = {"lock", "rep", "repz", "repe", "repnz", "repne", "notrack", "bnd", "data16",
            "addr32", "cs", "ds", "es", "fs", "gs", "ss", "xacquire", "xrelease", "{vex}",
            "{vex3}", "{evex}"}
EXTENSIONS = ("_native", "_pool")


def strip_parameters(name):
    """'void ns::f<T>(int) const [clone .part.0]' -> 'void ns::f<T>' (the template
    arguments stay: they decide which unit an instantiation can come from)."""
    name = re.sub(r"(\s*\[clone [^\]]*\])+$", "", name)
    name = re.sub(r"(\s+(const|volatile)|\s*&{1,2})+$", "", name)
    if not name.endswith(")"):
        return name
    depth = 0
    for i in range(len(name) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(name[i], 0)
        if depth == 0:
            return name[:i]
    return name


def is_isa_function(name):
    return bool(ISA_NAMESPACE.search(strip_parameters(name)) or ISA_CLONE.search(name))


def mnemonic_of(text):
    words = text.split("#", 1)[0].split()
    while words and (words[0] in PREFIXES or words[0].startswith("rex")):
        words = words[1:]
    return words[0] if words else ""


def is_avx(text):
    """True if the instruction (objdump AT&T text) needs AVX/AVX-512/FMA/BMI."""
    mnemonic = mnemonic_of(text)
    operands = re.sub(r"<[^>]*>", "", text.split("#", 1)[0])  # drop symbolic targets
    return bool((mnemonic.startswith("v") and mnemonic not in NOT_VEX)
                or mnemonic in BMI or AVX512_MASK.match(mnemonic)
                or AVX_REGISTER.search(operands))


def disassemble(path):
    """{function name: [instruction text]} for the functions defined in the library."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", path],
                         check=True, capture_output=True, text=True).stdout
    functions, current, section = {}, None, ""
    for line in out.splitlines():
        m = SECTION.match(line)
        if m:
            section, current = m.group(1), None
            continue
        m = HEADER.match(line)
        if m:
            name = m.group(2)
            external = section.startswith(".plt") or "@plt" in name
            current = None if external else functions.setdefault(name, [])
            continue
        m = INSN.match(line)
        if m and current is not None:
            current.append(m.group(1))
    return functions


def is_x86_64(path):
    out = subprocess.run(["readelf", "-h", path], check=True, capture_output=True,
                         text=True).stdout
    return "X86-64" in out


def has_symbol_table(path):
    out = subprocess.run(["readelf", "-S", "-W", path], check=True, capture_output=True,
                         text=True).stdout
    return " .symtab " in out


def check_library(path):
    """Print a summary of one library; return the number of violating functions."""
    functions = disassemble(path)
    isa = [f for f in functions if is_isa_function(f)]
    violations = {}
    for name, insns in functions.items():
        if name in isa:
            continue
        bad = [i for i in insns if is_avx(i)]
        if bad:
            violations[name] = bad
    avx_in_isa = sum(1 for f in isa if any(is_avx(i) for i in functions[f]))
    print(f"{os.path.basename(path)}: {len(functions)} functions scanned, {len(isa)} in ISA "
          f"units ({avx_in_isa} of them use AVX), {len(violations)} violations")
    for name, bad in sorted(violations.items()):
        kinds = Counter(mnemonic_of(i) for i in bad)
        print(f"  VIOLATION {name}\n    {len(bad)} AVX instructions, e.g. "
              + ", ".join(f"{k} x{n}" for k, n in kinds.most_common(6)))
        for insn in bad[:3]:
            print(f"      {insn.strip()}")
    return len(violations)


def libraries(paths):
    found = []
    for p in paths:
        if os.path.isdir(p):
            found += [f for e in EXTENSIONS for f in sorted(glob(os.path.join(p, e + "*.so")))]
        elif os.path.isfile(p):
            found.append(p)
        else:
            print(f"check_isa: no such file or directory: {p!r}", file=sys.stderr)
            raise SystemExit(2)
    return found


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    for tool in ("objdump", "readelf"):
        if shutil.which(tool) is None:
            print(f"check_isa: {tool} not found (binutils)", file=sys.stderr)
            return 2
    libs = libraries(argv)
    if not libs:
        print(f"check_isa: no extension found in {argv}", file=sys.stderr)
        return 2
    violations = 0
    for lib in libs:
        if not is_x86_64(lib):
            print(f"{os.path.basename(lib)}: not x86-64, nothing to check")
            continue
        if not has_symbol_table(lib):
            print(f"check_isa: {lib} is stripped: cannot attribute code to functions",
                  file=sys.stderr)
            return 2
        violations += check_library(lib)
    if violations:
        print(f"check_isa: FAILED, {violations} baseline functions use AVX.  Code that needs "
              "an ISA belongs in csrc/*_avx2.cpp / *_avx512.cpp inside namespace aek::avx2 / "
              "aek::avx512, and a shared header template instantiated there must take a type "
              "from that unit's anonymous namespace: otherwise the linker may keep its AVX "
              "copy for the generic callers too.")
        return 1
    print("check_isa: OK, no AVX outside the ISA units")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
