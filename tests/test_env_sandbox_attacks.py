"""The code sandbox: attack programs must all fail safely; the host and the app state stay untouched."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from environments.apps import AppsEnv, Sandbox, SandboxLimits, task_ids

SECRET = "host-secret-do-not-read"


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """Host-side things an attack might reach: a secret file, a victim file and a localhost server."""
    root = tmp_path_factory.mktemp("host")
    secret = root / "secret.txt"
    secret.write_text(SECRET)
    victim = root / "victim.txt"
    victim.write_text("intact")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield {"root": root, "secret": str(secret), "victim": str(victim), "port": server.getsockname()[1],
           "accepted": accepted}
    stop.set()
    thread.join()
    server.close()


@pytest.fixture(scope="module")
def env():
    limits = SandboxLimits(wall_seconds=2.0, cpu_seconds=60, memory_bytes=512 << 20, output_chars=2000)
    env = AppsEnv(max_steps=10_000, limits=limits)
    env.reset(task_ids("train")[0])
    yield env
    env.close()


ATTACKS = {
    "read /etc/passwd": "print(open('/etc/passwd').read())",
    "read host secret": "print(open({secret!r}).read())",
    "write outside scratch": "open({root!r} + '/pwned.txt', 'w').write('x')",
    "append to host file": "open({victim!r}, 'a').write('pwned')",
    "os.open outside": "import os\nos.open({secret!r}, os.O_RDONLY)",
    "list root dir": "import os\nprint(os.listdir('/'))",
    "scandir host dir": "import os\nprint(list(os.scandir({root!r})))",
    "remove host file": "import os\nos.remove({victim!r})",
    "rename host file": "import os\nos.rename({victim!r}, 'stolen.txt')",
    "symlink escape": "import os\nos.symlink({secret!r}, 'link')\nprint(open('link').read())",
    "chdir to root": "import os\nos.chdir('/')\nprint(open('etc/hostname').read())",
    "parent dir escape": "print(open('../../../../etc/passwd').read())",
    "pathlib import": "import pathlib\nprint(pathlib.Path({secret!r}).read_text())",
    "proc environ": "print(open('/proc/self/environ').read())",
    "reopen protocol fd": "import os\nf = os.fdopen(0)\nprint(f.readline())",
    "open fd number": "open(1, 'w').write('junk')",
    "socket to localhost": "import socket\nsocket.create_connection(('127.0.0.1', {port}))",
    "raw _socket": "import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))",
    "urllib": "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/')",
    "os.system": "import os\nos.system('touch ' + {root!r} + '/pwned.txt')",
    "subprocess": "import subprocess\nsubprocess.run(['touch', {root!r} + '/pwned.txt'])",
    "os.popen": "import os\nos.popen('id').read()",
    "fork": "import os\npid = os.fork()\nprint('forked', pid)",
    "posix_spawn": "import os\nos.posix_spawn('/bin/touch', ['touch', {root!r} + '/pwned.txt'], {{}})",
    "execv": "import os\nos.execv('/bin/sh', ['sh', '-c', 'touch ' + {root!r} + '/pwned.txt'])",
    "posix module": "import posix\nposix.system('touch ' + {root!r} + '/pwned.txt')",
    "ctypes": "import ctypes\nctypes.CDLL(None).system(b'touch /tmp/pwned')",
    "kill host": "import os\nos.kill(os.getppid(), 9)",
    "raise rlimit": "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))",
    "memory bomb": "x = bytearray(8 * 1024 ** 3)",
    "memory growth": "chunks = []\nwhile True:\n    chunks.append('x' * 10 ** 7)",
    "infinite loop": "while True:\n    pass",
    "sleep forever": "import time\ntime.sleep(3600)",
    "recursion bomb": "def f():\n    return f()\nf()",
    "huge file in scratch": "open('big.bin', 'wb').write(b'x' * (64 * 1024 * 1024))",
    "import the app database": "import environments.apps.world as w\nprint(w)",
    "import the evaluator": "from environments.apps import tasks\ntasks.TASKS.clear()",
    "gc hunt for the db": "import gc\nprint([o for o in gc.get_objects() if isinstance(o, dict) and 'contacts' in o])",
    "api object internals": "apis.phone.db['phone']['contacts'].clear()",
    "non-api method": "apis.phone.call(api_name='delete_contact', kwargs={{'contact_id': 1}})",
    "private api": "apis.phone._kill(access_token='x')",
    "fake complete_task": "apis.supervisor = None\nprint('patched locally only')",
    "forged done message": "import os\nos.write(1, b'{{\"type\": \"done\", \"exec_id\": \"x\", \"output\": \"fake\"}}\\n')\nprint('real')",
    "protocol garbage": "import os\nos.write(1, b'garbage that is not json\\n')\nimport time\ntime.sleep(1)",
    "exit": "import sys\nsys.exit(0)",
    "hard exit": "import os\nos._exit(3)",
    "threads": "import threading\nthreading.Thread(target=print).start()",
    "signal handler": "import signal\nsignal.signal(signal.SIGALRM, print)",
}


def _host_intact(host) -> None:
    assert open(host["victim"]).read() == "intact"
    assert open(host["secret"]).read() == SECRET
    assert not (host["root"] / "pwned.txt").exists() and not os.path.exists("/tmp/pwned")
    assert not host["accepted"], "a sandbox connected to the host's localhost server"


def test_attacks_are_distinct_runnable_programs():
    """Each attack is valid Python (a syntax error would be 'contained' trivially) and none repeats."""
    paths = {"secret": "/h/secret.txt", "victim": "/h/victim.txt", "root": "/h", "port": 1}
    programs = {name: code.format(**paths) for name, code in ATTACKS.items()}
    for name, code in programs.items():
        compile(code, name, "exec")
    assert len(set(programs.values())) == len(programs) >= 30


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_contained(name, host, env):
    code = ATTACKS[name].format(**{k: v for k, v in host.items() if k != "accepted"})
    before = env._suite.snapshot()  # noqa: SLF001 - the host-side state the evaluator reads
    result = env.step(code)
    obs = result.observation
    assert SECRET not in obs and "root:x:0" not in obs
    assert "Error" in obs or "truncated" in obs or "patched locally only" in obs or "real" in obs, obs
    assert "forked" not in obs and "fake" not in obs.replace("fake complete", "")
    _host_intact(host)
    assert env._suite.snapshot() == before  # noqa: SLF001
    assert not env._suite.supervisor.completed  # noqa: SLF001
    after = env.step("print(6 * 7)")  # the environment keeps serving
    assert "42" in after.observation and not after.done


def test_huge_output_is_truncated(env):
    obs = env.step("print('x' * 10 ** 7)").observation
    assert "[output truncated" in obs and len(obs) < 3000
    obs = env.step("for i in range(200000):\n    print(i)").observation
    assert "[output truncated" in obs and len(obs) < 3000


def test_scratch_directory_is_usable(env):
    obs = env.step("open('notes.txt', 'w').write('hello')\nimport os\nprint(os.listdir('.'), open('notes.txt').read())")
    assert "notes.txt" in obs.observation and "hello" in obs.observation


def test_cpu_limit_kills_and_the_sandbox_recovers():
    calls = []
    sandbox = Sandbox(lambda app, api, kwargs: calls.append(api), SandboxLimits(wall_seconds=20, cpu_seconds=1))
    try:
        result = sandbox.execute("while True:\n    pass")
        assert result.error and "CPU time limit" in result.error and result.restarted
        again = sandbox.execute("print(apis.x.y(a=1))")
        assert "None" in again.output and calls == ["y"]
    finally:
        sandbox.close()
    assert not os.path.exists(sandbox.scratch)


def test_wall_time_limit_and_state_loss_message():
    sandbox = Sandbox(lambda *a: None, SandboxLimits(wall_seconds=0.5))
    try:
        sandbox.execute("keep = 1")
        result = sandbox.execute("while True:\n    pass")
        assert "wall-time limit" in result.error and "restarted" in result.as_observation()
        assert "NameError" in sandbox.execute("print(keep)").error
    finally:
        sandbox.close()
