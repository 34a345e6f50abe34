from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.models import ApiToken, Membership, Role
from accounts.permissions import project_create_check, project_for_user, projects_visible_to

User = get_user_model()


class ProjectOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()


class ProjectDetailOutput(ProjectOutput):
    role = serializers.CharField(help_text="The reader's role in the project.")


class ProjectListApi(APIView):
    class Input(serializers.Serializer):
        slug = serializers.CharField(max_length=64)
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        description = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(operation_id="v1_projects_list",
                   responses=inline_serializer("ProjectList", {"projects": ProjectOutput(many=True)}))
    def get(self, request):
        projects = projects_visible_to(request.user).distinct()
        return Response({"projects": ProjectOutput(projects, many=True).data})

    @extend_schema(request=Input, responses={201: ProjectOutput})
    def post(self, request):
        project_create_check(request.user)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(user=request.user, **data.validated_data)
        return Response(ProjectOutput(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectDetailOutput)
    def get(self, request, slug):
        project = project_for_user(request.user, slug)
        body = ProjectOutput(project).data
        body["role"] = project.user_role.label
        return Response(body)


class MemberOutput(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.CharField(source="role_name")


class MemberListApi(APIView):
    class Input(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        role = serializers.ChoiceField(choices=[r.label for r in Role])

    @extend_schema(operation_id="v1_projects_members_list",
                   responses=inline_serializer("MemberList", {"members": MemberOutput(many=True)}))
    def get(self, request, slug):
        project = project_for_user(request.user, slug)
        members = Membership.objects.filter(project=project).select_related("user")
        return Response({"members": MemberOutput(members, many=True).data})

    @extend_schema(request=Input, responses=MemberOutput)
    def post(self, request, slug):
        project = project_for_user(request.user, slug, min_role=Role.OWNER)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_set(project=project, actor=request.user, **data.validated_data)
        return Response(MemberOutput(membership).data)


class MemberDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, slug, username):
        project = project_for_user(request.user, slug, min_role=Role.OWNER)
        services.membership_remove(project=project, username=username, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    is_active = serializers.BooleanField()


class TokenCreatedOutput(TokenOutput):
    token = serializers.CharField(help_text="The token itself, shown this once.")


class TokenListApi(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        expires_at = serializers.DateTimeField(required=False, allow_null=True)

    @extend_schema(operation_id="v1_tokens_list",
                   responses=inline_serializer("TokenList", {"tokens": TokenOutput(many=True)}))
    def get(self, request):
        tokens = ApiToken.objects.filter(user=request.user)
        return Response({"tokens": TokenOutput(tokens, many=True).data})

    @extend_schema(request=Input, responses={201: TokenCreatedOutput})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        token, raw = services.api_token_create(user=request.user, **data.validated_data)
        body = TokenOutput(token).data
        body["token"] = raw  # shown this once; only its hash is stored
        return Response(body, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, token_id: int):
        get_object_or_404(ApiToken, pk=token_id, user=request.user)
        services.api_token_revoke(user=request.user, token_id=token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(responses=inline_serializer("Me", {
        "username": serializers.CharField(), "is_staff": serializers.BooleanField()}))
    def get(self, request):
        return Response({"username": request.user.username, "is_staff": request.user.is_staff})
