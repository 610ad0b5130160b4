# smppgw: slim, non-root image running the same `smppgw run` as the README.
#   docker build -t smppgw .
#   docker run -p 2775:2775 -p 8080:8080 -v smppgw-data:/var/lib/smppgw smppgw
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY smppgw ./smppgw
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --home-dir /var/lib/smppgw --shell /usr/sbin/nologin smppgw \
    && install -d -o smppgw -g smppgw /var/lib/smppgw /etc/smppgw
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config/smppgw.example.toml /etc/smppgw/smppgw.example.toml
USER smppgw
WORKDIR /var/lib/smppgw
VOLUME ["/var/lib/smppgw"]
EXPOSE 2775 8080
# Inside a container the listeners must not be loopback-only (the flags override the config's listen addresses).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/metrics', timeout=2); sys.exit(0)"
ENTRYPOINT ["smppgw"]
CMD ["run", "--smpp-listen", "0.0.0.0:2775", "--http-listen", "0.0.0.0:8080"]
