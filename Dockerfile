# Builds the newsletter service image used by docker-compose.yml.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /source
COPY . .
RUN dotnet publish src/Newsletter.Host/Newsletter.Host.csproj -c Release -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
# Templates are compiled into the image: the service loads them and never runs the compiler
# (a template mounted over /app/templates is compiled at first use instead).
ENV Newsletter__CompiledTemplatesDirectory=/app/compiled-templates
RUN dotnet newsletter.dll templates compile
ENV ASPNETCORE_URLS=http://+:5080
EXPOSE 5080
USER app
ENTRYPOINT ["dotnet", "newsletter.dll"]
CMD ["run"]
