package dockerfilecases

// Case is a Dockerfile (after "ARG BASE"; FROM $BASE names the test's
// Debian image), its context and its build args.
type Case struct {
	Name, Dockerfile string
	// Files are the context's: "symlink:T" makes a symlink to T, "exec:"
	// an executable, "tgz:" and "tar:" an archive of name=content lines;
	// a name ending in / is an empty directory.
	Files  map[string]string
	Args   []string // KEY=VALUE; $URL in the Dockerfile adds URL=
	Target string
	// Secret is the content of the secret id=tok the builds are given.
	Secret string
	// Stubs are directories only Docker 20.10 leaves (see Cases).
	Stubs []string
}

// Cases are Dockerfiles modelled on BuildKit's own tests
// (frontend/dockerfile/dockerfile_test.go) and the Dockerfile reference,
// each with what Docker 20.10's builtin frontend accepts. Where BuildKit
// changed since, devbox does what the newer one does, and the case is
// not here: ADD --chown of a local archive chowns what it unpacks
// (BuildKit 46e52f472, "file: add chown to archive unpack from copy";
// a case's stubs are the empty mount points RUN --mount left in 20.10's
// layers and BuildKit 0.11 and later remove (2cae26f61, "stubs cleaner
// should recursively remove empty directory mounts"), as devbox does;
// TestDockerfileAsBuildKit); COPY --from=$VAR is refused with BuildKit's
// words (20.10 took it for an image name).
var Cases = []Case{
	{Name: "env", Dockerfile: `FROM $BASE
ENV A=1 B="x y"
ENV C=$A-${B} D=\$A
ENV PATH=/opt/bin:$PATH
RUN echo "$C|$D|$PATH" > /env
`},
	{Name: "expansion-unset", Dockerfile: `FROM $BASE
ARG X
ENV Y=${X:-def} Z=${X:+set} W="${X}"
RUN echo "$Y|$Z|$W" > /f
`},
	{Name: "expansion-set", Args: []string{"X=val"}, Dockerfile: `FROM $BASE
ARG X
ENV Y=${X:-def} Z=${X:+set} W="${X}"
RUN echo "$Y|$Z|$W|$X" > /f
`},
	{Name: "arg-before-from", Args: []string{"V=2"}, Dockerfile: `ARG V=1
ARG U=u
FROM $BASE
ARG V
ARG U
RUN echo "$V $U" > /v
`},
	{Name: "arg-not-in-config", Dockerfile: `FROM $BASE
ARG A=1
RUN echo $A > /a
ENV B=$A
`},
	{Name: "proxy-args", Args: []string{"HTTP_PROXY=http://proxy.invalid:3128", "no_proxy=local"}, Dockerfile: `FROM $BASE
RUN echo "$HTTP_PROXY $no_proxy" > /p
`},
	{Name: "workdir", Dockerfile: `FROM $BASE
WORKDIR /a
WORKDIR b
WORKDIR ../c
RUN pwd > /pwd
ENV D=/opt/x
WORKDIR $D/y
`},
	{Name: "copy-file", Files: map[string]string{"a.txt": "a\n", "b.txt": "b\n"}, Dockerfile: `FROM $BASE
COPY a.txt /dst/
COPY a.txt /renamed
COPY a.txt b.txt /two/
WORKDIR /w
COPY a.txt .
COPY b.txt rel/
`},
	{Name: "copy-dir", Files: map[string]string{"dir/x": "x\n", "dir/sub/y": "y\n"}, Dockerfile: `FROM $BASE
COPY dir /target
COPY dir/ /t2/
COPY dir /t3/
`},
	{Name: "copy-wildcard", Files: map[string]string{"a.txt": "a\n", "b.txt": "b\n", "c.md": "c\n", "d/e.txt": "e\n"}, Dockerfile: `FROM $BASE
COPY *.txt /w/
COPY [ac].* /x/
COPY d/*.txt /y/
`},
	{Name: "copy-chown", Files: map[string]string{"a.txt": "a\n", "dir/x": "x\n"}, Dockerfile: `FROM $BASE
RUN groupadd -g 1600 team && useradd -u 1500 -g team dev
COPY --chown=1234 a.txt /o1
COPY --chown=1234:5678 a.txt /o2
COPY --chown=dev a.txt /o3
COPY --chown=dev:root dir /o4
COPY --chown=1500:team dir /o5/
`},
	{Name: "add-local", Files: map[string]string{"a.txt": "a\n", "dir/x": "x\n"}, Dockerfile: `FROM $BASE
ADD a.txt /add.txt
ADD dir /adddir/
ADD --chown=42:42 dir /owned/
`},
	{Name: "dockerignore", Files: map[string]string{".dockerignore": "*.log\n!keep.log\nsecret/\n**/tmp\n", "a.log": "a\n", "keep.log": "k\n",
		"secret/s": "s\n", "src/main.c": "int main;\n", "src/tmp": "t\n", "src/deep/tmp": "t\n"}, Dockerfile: `FROM $BASE
COPY . /ctx
`},
	{Name: "symlinks", Files: map[string]string{"real": "r\n", "link": "symlink:real", "dir/f": "f\n", "dirlink": "symlink:dir"}, Dockerfile: `FROM $BASE
COPY . /s/
COPY link /l
COPY dirlink /dl
`},
	{Name: "stages", Dockerfile: `FROM $BASE AS build
RUN echo built > /msg && mkdir -p /out && echo o > /out/o
FROM $BASE
COPY --from=build /msg /copied
COPY --from=0 /out /out2
COPY --from=build /out/ /out3/
`},
	{Name: "stage-from-stage", Dockerfile: `FROM $BASE AS one
ENV ONE=1
RUN echo one > /one
FROM one AS two
ENV TWO=2
RUN echo two > /two
`},
	{Name: "target", Target: "mid", Dockerfile: `FROM $BASE AS mid
RUN echo mid > /mid
LABEL stage=mid
FROM mid
RUN echo last > /last
`},
	{Name: "scratch", Dockerfile: `FROM $BASE AS b
RUN echo x > /x
FROM scratch
COPY --from=b /x /x
COPY --from=b /etc/debian_version /etc/
`},
	{Name: "user", Dockerfile: `FROM $BASE
RUN useradd -m -u 1500 dev
USER dev
RUN touch ~/f && id > ~/id
WORKDIR /home/dev/w
RUN touch here
USER 1600:1700
WORKDIR /numeric
`},
	{Name: "cmd-entrypoint", Dockerfile: `FROM $BASE
CMD echo hi
ENTRYPOINT ["/bin/sh", "-c"]
FROM $BASE
CMD ["a", "b"]
ENTRYPOINT echo x
CMD ["c"]
`},
	{Name: "entrypoint-resets-cmd", Dockerfile: `FROM $BASE AS p
CMD ["p"]
FROM p
ENTRYPOINT ["/e"]
`},
	{Name: "shell", Dockerfile: `FROM $BASE
SHELL ["/bin/bash", "-eo", "pipefail", "-c"]
RUN echo "$0 $-" > /sh
CMD echo hi
`},
	{Name: "config-only", Dockerfile: `FROM $BASE
EXPOSE 80 443/udp 8080/tcp
LABEL a=b "c d"="e f" multi="x\
y"
MAINTAINER someone
STOPSIGNAL SIGQUIT
VOLUME /data ["/cache"]
HEALTHCHECK --interval=5s --timeout=3s --retries=2 --start-period=1s CMD curl -f http://localhost/ || exit 1
ONBUILD RUN echo trigger
`},
	{Name: "healthcheck-none", Dockerfile: `FROM $BASE
HEALTHCHECK NONE
`},
	{Name: "expose-arg", Args: []string{"PORT=9090"}, Dockerfile: `FROM $BASE
ARG PORT=8080
EXPOSE $PORT ${PORT}/udp
`},
	{Name: "run-forms", Dockerfile: `FROM $BASE
RUN ["/bin/sh", "-c", "echo exec > /exec"]
RUN echo a && \
    echo b > /multi
RUN echo 'quoted "x"' > /q
`},
	{Name: "deletes", Dockerfile: `FROM $BASE
RUN mkdir -p /opt/x/y && echo 1 > /opt/x/y/f && echo k > /opt/keep
RUN rm -rf /opt/x && mkdir /opt/x && echo 2 > /opt/x/new
RUN rm -rf /usr/share/doc /etc/motd
`},
	{Name: "links-perms", Dockerfile: `FROM $BASE
RUN echo a > /h1 && ln /h1 /h2 && ln -s /h1 /s1
RUN cp /bin/true /suid && chmod 4755 /suid && mkdir /sticky && chmod 1777 /sticky
RUN mkdir /owned && chown 123:456 /owned && mknod /fifo p
`},
	{Name: "copy-chmod", Files: map[string]string{"a.txt": "a\n", "dir/x": "x\n"}, Dockerfile: `FROM $BASE
COPY --chmod=0750 a.txt /x
COPY --chmod=640 dir /d/
`},
	{Name: "modes-names", Files: map[string]string{"run.sh": "exec:#!/bin/sh\n", "a b.txt": "ab\n", "ünï.txt": "u\n", "empty/": ""}, Dockerfile: `FROM $BASE
COPY ["a b.txt", "/x y/"]
COPY . /all/
COPY run.sh /usr/local/bin/
`},
	{Name: "copy-through-symlink", Files: map[string]string{"a.txt": "a\n"}, Dockerfile: `FROM $BASE
COPY a.txt /bin/
RUN ln -s /opt/real /opt/link && mkdir /opt/real
COPY a.txt /opt/link/
`},
	{Name: "add-archive", Files: map[string]string{"arch.tgz": "tgz:sub/f=f\nsub/g=g", "plain.tar": "tar:p/q=q"}, Dockerfile: `FROM $BASE
ADD arch.tgz /un/
ADD plain.tar /
COPY arch.tgz /copied/
`},
	{Name: "add-url", Dockerfile: `FROM $BASE
ARG URL
ADD $URL/file.txt /dl/
ADD $URL/file.txt /renamed.txt
ADD --chown=5:6 $URL/data.tgz /tgz/
`},
	{Name: "arg-env-shadow", Args: []string{"V=arg"}, Dockerfile: `FROM $BASE
ARG V
ENV V=env
RUN echo $V > /v
ARG W=w1
ENV W=$W-env
ARG W=w2
RUN echo $W > /w
`},
	{Name: "workdir-user", Dockerfile: `FROM $BASE
RUN useradd -m -u 1500 dev
USER dev
WORKDIR /wd/sub
USER root
WORKDIR /rootwd
`},
	{Name: "labels-inherit", Dockerfile: `FROM $BASE AS p
LABEL a=1 b=2
EXPOSE 80
FROM p
LABEL b=3 c=4
EXPOSE 80/tcp 81
`},
	{Name: "onbuild-stage", Dockerfile: `FROM $BASE AS p
ONBUILD RUN echo trig > /t
ONBUILD ENV T=1
FROM p
RUN echo after > /a
`},
	{Name: "whiteout-readd", Dockerfile: `FROM $BASE
RUN rm /etc/debian_version && rm -r /etc/apt
RUN echo new > /etc/debian_version && mkdir /etc/apt && echo s > /etc/apt/sources.list
`},
	{Name: "dockerignore-dirs", Files: map[string]string{".dockerignore": "**\n!src\n!README.md\nsrc/**/*.o\n", "README.md": "r\n", "other": "o\n",
		"src/a.c": "a\n", "src/a.o": "o\n", "src/x/b.o": "o\n", "src/x/b.c": "b\n"}, Dockerfile: `FROM $BASE
COPY . /ctx/
`},
	{Name: "run-user-files", Dockerfile: `FROM $BASE
RUN useradd -m -u 1500 dev && groupadd -g 2000 extra && usermod -aG extra dev
USER dev:extra
RUN touch /tmp/made && id -G > /tmp/groups && echo $HOME > /tmp/home
`},
	{Name: "escape-directive", Dockerfile: `# escape=` + "`" + `
FROM $BASE
RUN echo a ` + "`" + `
    b > /e
ENV P=C:\\x
`},
	{Name: "run-mount-cache", Dockerfile: `FROM $BASE
RUN --mount=type=cache,target=/var/cache/build echo a > /var/cache/build/f && ls /var/cache/build > /listing
RUN --mount=type=cache,target=/root/.cache,id=c2,uid=33,gid=33,mode=0700 stat -c '%u:%g %a' /root/.cache > /cachestat
`, Stubs: []string{"/var/cache/build", "/root/.cache"}},
	{Name: "run-mount-tmpfs-bind", Files: map[string]string{"a.txt": "a\n", "dir/x": "x\n"}, Dockerfile: `FROM $BASE AS b
RUN echo staged > /x
FROM $BASE
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && echo ok > /t
RUN --mount=type=bind,source=a.txt,target=/mnt/a cat /mnt/a > /copied
RUN --mount=type=bind,source=dir,target=/src,rw touch /src/new && ls /src > /ls
RUN --mount=type=bind,from=b,source=/x,target=/mnt/x cp /mnt/x /y
RUN --mount=target=/ctx ls /ctx > /ctxls
`, Stubs: []string{"/scratch", "/src", "/ctx"}},
	{Name: "run-mount-secret", Secret: "s3cr3t", Dockerfile: `FROM $BASE
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len
RUN --mount=type=secret,id=tok,target=/etc/tok,mode=0440 stat -c '%a' /etc/tok > /mode
RUN --mount=type=secret,id=missing test -e /run/secrets/missing && echo present > /none || echo absent > /none
`, Stubs: []string{"/run/secrets"}},
}
