using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Newsletter.Validation;

namespace Newsletter.Web;

/// <summary>What went wrong with a request, as every surface answers it: a status, a title and the field at fault.</summary>
public sealed record WebError(int Status, string Title, string? Field, string Detail, Exception Exception);

/// <summary>
/// How one group of endpoints shows a <see cref="WebError"/> (a page in the reader's language, a
/// dashboard page). Added as endpoint metadata; routes without it answer with problem details.
/// </summary>
public interface IErrorPresenter
{
    Task PresentAsync(HttpContext http, WebError error);
}

/// <summary>A posted form that could not be read as a form at all.</summary>
public sealed class UnreadableFormException(bool notAForm, string reason, Exception? inner = null) : Exception(reason, inner)
{
    /// <summary>True when the request was no form (another content type); false when the form was broken.</summary>
    public bool NotAForm { get; } = notAForm;
}

/// <summary>
/// The one mapping from exceptions to responses, for the API and the pages alike: bad input is a
/// 400 naming the field, an unknown thing a 404, a clash with stored state a 409, an oversized
/// body a 413, an expired form a 400. Anything else is the server's fault: logged, and a 500.
/// </summary>
public static class WebErrors
{
    public static WebError? Classify(Exception e) => e switch
    {
        InputException i => new(StatusCodes.Status400BadRequest, "Invalid request", i.Field, e.Message, e),
        NotFoundException n => new(StatusCodes.Status404NotFound, "Not found", n.Field, e.Message, e),
        ConflictException c => new(StatusCodes.Status409Conflict, "Conflict", c.Field, e.Message, e),
        AntiforgeryValidationException => new(StatusCodes.Status400BadRequest, "Form expired", null,
            "The form has no valid antiforgery token: reload the page and try again.", e),
        UnreadableFormException => new(StatusCodes.Status400BadRequest, "Bad request", null, "The form could not be read: " + e.Message, e),
        BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } =>
            new(StatusCodes.Status413PayloadTooLarge, "Request too large", null, "The request body is too large.", e),
        BadHttpRequestException b => new(b.StatusCode, "Bad request", null, e.Message, e),
        _ => null,
    };

    /// <summary>The API's answer: RFC 7807 problem details with the field at fault.</summary>
    public static Task WriteProblemAsync(HttpContext http, WebError error) =>
        TypedResults.Problem(title: error.Title, detail: error.Detail, statusCode: error.Status,
            extensions: error.Field is null ? null : new Dictionary<string, object?> { ["field"] = error.Field }).ExecuteAsync(http);
}

/// <summary>Answers every exception an endpoint lets out through <see cref="WebErrors"/> and the endpoint's presenter.</summary>
internal sealed class WebExceptionHandler(ILogger<WebExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        if (exception is OperationCanceledException && http.RequestAborted.IsCancellationRequested) return false;
        var presenter = http.Features.Get<IExceptionHandlerFeature>()?.Endpoint?.Metadata.GetMetadata<IErrorPresenter>();
        var error = WebErrors.Classify(exception);
        if (error is null)
        {
            // The server's fault. Pages answer with their own 500 page; the API with the framework's problem details.
            if (presenter is null) return false;
            logger.LogError(exception, "A request to {Path} failed", http.Request.Path);
            error = new WebError(StatusCodes.Status500InternalServerError, "Something went wrong", null, "Something went wrong; try again in a little while.", exception);
        }
        else if (error.Exception is UnreadableFormException or BadHttpRequestException)
            logger.LogInformation("A request to {Path} could not be read: {Reason}", http.Request.Path, exception.Message);
        if (presenter is null) await WebErrors.WriteProblemAsync(http, error);
        else await presenter.PresentAsync(http, error);
        return true;
    }
}
